"""``python -m trace_train.ablation``: the command line of ``trace_train.eval.ablation``."""

from trace_train.eval.ablation import main

if __name__ == '__main__':
    main()

"""``python -m trace_train.chain``: the command line of ``trace_train.eval.chain``."""

from trace_train.eval.chain import main

if __name__ == '__main__':
    main()

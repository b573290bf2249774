"""``python -m trace_train.attention``: the command line of ``trace_train.eval.attention``."""

from trace_train.eval.attention import main

if __name__ == '__main__':
    main()

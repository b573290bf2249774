"""``python -m trace_train.evaluate``: the command line of ``trace_train.eval.evaluate``."""

from trace_train.eval.evaluate import main

if __name__ == '__main__':
    main()

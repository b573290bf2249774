"""``python -m trace_train.probe``: the command line of ``trace_train.eval.probe``."""

from trace_train.eval.probe import main

if __name__ == '__main__':
    main()

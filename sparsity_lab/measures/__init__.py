"""Sparsity measures of weights (``sparsity``: PQ Index, Gini, Hoyer; docs/methods.md §1), the grouped layout and
segment kernels behind them (``layout``, ``segments``) and dense FLOPs (``flops``)."""

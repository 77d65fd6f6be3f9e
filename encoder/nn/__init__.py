"""The network, one module per part: the masked LSTM (``lstm``), the convolution branch (``conv``),
segment maxima and summary statistics (``statistics``), next-event surprise and its trend
(``surprise``), the random kernels (``kernels``, ``kernel_loops``), and the autoencoder that
assembles them (``model``). Forward passes only: training lives in ``encoder.training``."""

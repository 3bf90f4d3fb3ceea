"""RTN Studio's Qt-free library: the Recurrent Transformer Network, data, training, evaluation."""

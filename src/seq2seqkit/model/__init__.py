"""The network: encoder, attention, decoder and the encoder-decoder that joins them."""

"""The data sets: the two-digit canvases of the paper (``twodigit``), Megapixel MNIST (``megapixel``)
and the sparse storage its canvases use (``sparse``), your own images (``folder``), and the sources they
draw from (``mnist``, ``fivek``, ``fivek_miniature``). ``saccadelib.tasks`` turns each into what the
training loop reads."""

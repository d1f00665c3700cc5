"""The digit classifiers that define the modes of the stacked-digit datasets: their networks,
training recipes and weights (``digits``: shipped inside the package; ``cache``: where
classifiers trained on user files are kept)."""

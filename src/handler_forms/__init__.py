"""Two handler forms that the build's static check cannot verify, and the import check does."""

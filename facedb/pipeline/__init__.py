"""Photo → faces: decode, detect, align, embed, estimate age and gender."""

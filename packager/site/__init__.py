"""The site side: what runs where the bundle arrives (images into an engine or a registry, ...)."""

"""Area geometry below the store: the shapes queries name, made valid and cached (areas), and stored shapes (shapes)."""

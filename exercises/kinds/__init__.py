"""Exercise kinds: one class per kind, registered in exercises.registry (torch-free imports)."""

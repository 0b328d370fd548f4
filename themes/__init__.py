"""Project themes shipped as package data (Textual themes plus their .tcss)."""

"""The console's widgets: tick table, status bar, panels and charts."""

"""The console's widgets: tick table, status bar, panels and charts."""

from services.scheduling import Yielder

# Painting is bulk work on the UI thread: widgets that paint line by line
# call this, so a frame gives the CPU away every half millisecond (see
# services.scheduling). One instance: only the UI thread paints.
paint_yield = Yielder()

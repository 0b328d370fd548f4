"""The console's widgets: tick table, status bar, panels and charts."""

from services.runtime.scheduling import Manners

# Painting is bulk work on the UI thread: widgets that paint line by line
# call this, so a frame gives the CPU away every half millisecond while the
# UI can afford it (see services.runtime.scheduling). The app starts and reviews it;
# one instance, as only the UI thread paints.
paint_yield = Manners()

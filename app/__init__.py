"""RTN Studio's desktop app: PySide6 + pyqtgraph views and controllers over ``rtn_core``."""

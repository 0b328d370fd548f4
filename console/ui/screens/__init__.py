"""The console's modal screens: kill switch, resume, help and symbol detail."""

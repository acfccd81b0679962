"""A school's people: the roster imported from its information system (OneRoster 1.2 CSV),
classes and enrollments, parents and their children, and first sign-in claim codes."""

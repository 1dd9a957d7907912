"""CycleGAN Studio's PySide6 views. Each panel is a file; ``MainWindow`` only assembles them.

Data flows one way (engine reports → ``worker`` signals → panels); commands flow the other
way through the worker's small thread-safe surface (start, pause, resume, stop, save).
"""

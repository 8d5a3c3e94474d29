"""The window's frame: main window, menus and actions, settings, start-up, the job queue and its
panel, the model manager."""

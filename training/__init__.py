"""Training the bundled model (resources/bundled): a tool of this checkout, not part of the app.

`python -m training --export resources/bundled` trains (or resumes) and exports the model folder the
app ships; bundled.py holds the training itself. Neither the wheel nor the PyInstaller bundle carries
this folder, and nothing in mfv_desktop imports it.
"""

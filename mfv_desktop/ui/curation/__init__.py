"""Curation: the scene canvas, the scene library, object stamps, relation labels and their undoable edits."""

"""Turn outside files into validated scenes: plain images, GQA scene graphs, the authors' metadata.csv.

Everything read here is treated as hostile: every failure is a `BadImport` (a `SceneError`) whose
message names the file, the record (image id or CSV row) where there is one, and the fix. Scenes
come back with absolute image paths; copying them into a managed folder is the store's job.

* Images are decoded in full with Pillow (`check_image`), after a pixel-count check on the header.
* GQA scene graphs (``{image_id: {"width", "height", "objects": {id: {"name", "x", "y", "w", "h",
  "relations": [{"name", "object"}]}}}}``) are streamed record by record (files up to
  `MAX_JSON_BYTES`) and filtered as the authors' ``dataset/prepare_gqa_dataset.py`` filters them
  (`GQAOptions`, with their defaults). Every record is validated in full before the filter;
  width, height and objects are required (GQA always has them; the authors skip records without).
  A GQA relation "s <predicate> o" becomes the triple (s, relation, o) and, where the project has a
  name for it, the inverse (o, inverse, s), as the generator stores both. The scene's anchor is
  the object with the most relations that have exactly one target; with the authors'
  one-object-per-predicate rule every GQA subject qualifies, so their query (given the subject,
  name the object) is the project task anchor = subject, inverse relation.
* The synthetic ``metadata.csv`` of the authors' ``dataset/generate_synthetic_images.py`` has the
  columns image_name, anchor, above_object, below_object, left_object, right_object, random_object1
  and, for each of those objects, ``<column>_pos`` ("x y", the centre where it was pasted) and
  ``<column>_size`` ("w h", the pasted picture). The diagonal variant read by their
  ``synthetic_dataset.py`` (``above_left_object``, ...) is read too. Each row becomes a scene with
  the anchor set and the triples (neighbour, relation, anchor) plus their inverses.

Missing image files (GQA and CSV alike) are skipped and counted in a logged warning; when no image
of the records that passed exists, the import fails with a BadImport saying where the images were
looked for. A record that passes no filter is not an error; an empty file or a file without records
is.

The modules: images.py (plain images and the file checks), records.py (what the readers share),
gqa.py, synthetic.py.
"""

from .gqa import (
    ANCHOR_RULES,
    GQA_EXCLUDED_NAMES,
    GQA_RELATIONS,
    MAX_JSON_BYTES,
    RELATION_INVERSE,
    GQAOptions,
    GQAReport,
    Tally,
    read_gqa,
    read_gqa_scene_graphs,
)
from .images import (
    IMAGE_FORMATS,
    IMAGE_SUFFIXES,
    MAX_PIXELS,
    BadImport,
    ImageInfo,
    StrPath,
    check_image,
    find_images,
    safe_child,
    scene_from_image,
    upright_png,
)
from .records import MAX_COORD
from .synthetic import (
    AUTHOR_NAME_FIXES,
    AUTHOR_SPLITS,
    MAX_CSV_BYTES,
    read_synthetic_metadata,
)

__all__ = [
    "ANCHOR_RULES",
    "AUTHOR_NAME_FIXES",
    "AUTHOR_SPLITS",
    "GQA_EXCLUDED_NAMES",
    "GQA_RELATIONS",
    "IMAGE_FORMATS",
    "IMAGE_SUFFIXES",
    "MAX_COORD",
    "MAX_CSV_BYTES",
    "MAX_JSON_BYTES",
    "MAX_PIXELS",
    "RELATION_INVERSE",
    "BadImport",
    "GQAOptions",
    "GQAReport",
    "ImageInfo",
    "StrPath",
    "Tally",
    "check_image",
    "find_images",
    "read_gqa",
    "read_gqa_scene_graphs",
    "read_synthetic_metadata",
    "safe_child",
    "scene_from_image",
    "upright_png",
]

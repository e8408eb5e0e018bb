"""Procedurally generated street scenes, written exactly in the Cityscapes file layout.

No Cityscapes file may be downloaded or shipped with this project, so the book's default dataset is made here:
license-clean street scenes seen from a car's windscreen camera, generated on first use, with every file where
the real dataset has it (``leftImg8bit/<split>/<city>/..._leftImg8bit.png`` and the four ``gtFine`` files).
Every loader in the book therefore works unchanged on the real Cityscapes.

A frame is made in two steps, both driven by one explicit ``numpy.random.Generator``:

1. :func:`make_scene` lays out a street in metres (road, sidewalks, buildings, trees, poles, vehicles, people),
   projects it through a pinhole camera like Cityscapes' own (focal length 2262 px at 2048 px width, the camera
   1.2 m above the road) and writes the annotators' polygons, far objects first so nearer ones cover them;
2. :func:`render_image` paints a photo-like RGB image from those polygons. Each pixel belongs to the object that
   the official rasterizer draws last there, so the image agrees with the label masks pixel for pixel.

The masks are then drawn from the polygons by :mod:`seglib.masks`, exactly as the official ``json2labelImg`` and
``json2instanceImg`` do. :func:`ensure_dataset` makes a whole dataset, idempotently.

The work is split by what changes it:

* :mod:`~seglib.synthetic.geometry` - the camera, the street, polygon clipping and union, flat shapes in metres;
* :mod:`~seglib.synthetic.scene` - the layout of one street and its polygons (:func:`make_scene`);
* :mod:`~seglib.synthetic.textures` - what each kind of object looks like (palettes, facades, markings...);
* :mod:`~seglib.synthetic.render` - who owns each pixel, shading and camera effects (:func:`render_image`);
* :mod:`~seglib.synthetic.dataset` - frames, their files and whole datasets on disk (:func:`ensure_dataset`).
"""

from __future__ import annotations

from seglib.synthetic.dataset import (
    CITIES, FRAME_NUMBER, GENERATOR_VERSION, MARKER_NAME, ensure_dataset, frame_for, generate_frame, write_frame,
)
from seglib.synthetic.geometry import DESIGN_SIZE
from seglib.synthetic.render import owner_map, render_image
from seglib.synthetic.scene import make_scene

__all__ = [
    "GENERATOR_VERSION", "DESIGN_SIZE", "CITIES", "FRAME_NUMBER", "MARKER_NAME",
    "make_scene", "owner_map", "render_image", "generate_frame", "frame_for", "write_frame", "ensure_dataset",
]

"""What is around the program, never part of it: the offline render, diff and plan checks
(`render/`), the bench and its floor (`bench`, `floor`, `scratch`), the config reference
generator (`docs`), the preview helper (`preview.sh`), the lost-host helper
(`planned_deletes`) and the end-to-end lab (`lab/`). May use: stacks and components; the
program never imports tools."""

"""What is around the program, never part of it: the offline render and diff (`render/`), the
offline policy check (`check`), the bench and its floor (`bench`, `floor`, `scratch`), the
config reference generator (`docs`), `make preview` (`preview.sh`, `preview_engine`), the
lost-host helper (`planned_deletes`) and the end-to-end lab (`lab/`). May use: stacks,
components and the policy pack; the program never imports tools."""

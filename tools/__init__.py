"""What is around the program, never part of it: the offline render (`render/`), the bench
(`bench`), the config reference generator (`docs`), the preview helper (`preview.sh`) and the
end-to-end lab (`lab/`). May use: stacks and components; the program never imports tools."""

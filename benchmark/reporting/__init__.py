"""What a run folder's finished cells become: tables in the paper's format (Markdown, CSV, LaTeX),
plots, and runs in mlflow."""

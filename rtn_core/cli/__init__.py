"""The command-line front ends of main.py: each module reads its arguments (add_arguments) and runs the job (run)."""

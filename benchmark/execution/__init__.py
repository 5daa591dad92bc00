"""Running planned work: the debug, local and SLURM executors, the training runs cells wait for, the
job records behind `status`, and the cluster profiles."""

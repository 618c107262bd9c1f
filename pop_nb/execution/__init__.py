"""Running jobs: stage notebooks, our papermill engine, kernels, the task lifecycle and the job runner."""

// placeholder: written by the core/pipeline work

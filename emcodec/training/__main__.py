"""`python -m emcodec.training --B 10 --width 32 --minutes 60 --out checkpoints/b10`."""

from .train import main

if __name__ == "__main__":
    main()

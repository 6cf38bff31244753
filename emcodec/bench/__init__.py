"""`emcodec benchmark`: rate-distortion and encoder cost against standard codecs (issue 4).

baselines.py  the standard codecs, one small class each (imagecodecs, PyAV)
matching.py   the quality-knob search that matches a baseline's bytes to a .tcs file
stills.py     short movies with a known clean reference, made from real EM stills
run.py        the benchmark itself: compress, decode, match, time, score
science.py    what a microscopist measures: Bragg-peak cross-power, FRC, atom columns
verdict.py    who wins per B and measure at the same bytes, over noise seeds
report.py     rich table, JSON and Markdown
figure.py     the PNGs of the benchmark and of `emcodec demo`
command.py    the click command
"""

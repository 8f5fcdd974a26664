// memwarden optimize: the engine (being written).

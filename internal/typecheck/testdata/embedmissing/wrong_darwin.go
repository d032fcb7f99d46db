package embedmissing

// Shows that the files are checked in spite of the embed error.
var wrong string = 1

//! A1111 prompt syntax: emphasis, BREAK, 75-token chunks with comma backtracking.

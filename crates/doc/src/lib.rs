//! The layered document: layers, inpaint mask, selection, commands, transactions, undo, generation records.

pub mod infotext;

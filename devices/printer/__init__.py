"""The ESC/POS receipt printer: parser, core, status bytes, receipts and shells."""

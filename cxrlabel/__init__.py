"""cxrlabel: lexicon-driven labelling of chest radiograph reports."""

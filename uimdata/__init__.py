"""uimdata: understand, interpret and mitigate the weaknesses of pre-training corpora."""

__version__ = "0.1.0"

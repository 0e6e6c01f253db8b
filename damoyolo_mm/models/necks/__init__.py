from .rep_gfpn import RepGFPN

__all__ = ['RepGFPN']

"""Data: decoding image files, scanning domain folders, unpaired batches, and the built-in demo data."""

from engine.data.batches import UnpairedBatches
from engine.data.decode import IMAGE_EXTENSIONS, Skipped, load_image
from engine.data.folders import ImageFolder, check_pair, open_domain, open_domains, same_folder
from engine.errors import DataError, DataGoneError

__all__ = ["IMAGE_EXTENSIONS", "DataError", "DataGoneError", "Skipped", "load_image", "ImageFolder", "open_domain",
           "open_domains", "same_folder", "check_pair", "UnpairedBatches"]

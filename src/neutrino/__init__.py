"""neutrino: the Neutron v2.0 API and a real Linux dataplane, in Python."""

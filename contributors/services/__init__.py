"""Every write to the contributors' data goes through a function here (HackSoft: services)."""

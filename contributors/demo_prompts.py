"""The demo's prompts: the shared sentences every demo speaker reads first, and sentences chosen so that the
set covers every phone. Plain constants (no Django), so that benchmarks can read them without a project."""

# Original sentences written for this project (not from TIMIT or any other corpus). Together they hold
# every ARPAbet phone; each word is in CMUdict.
SHARED_PROMPTS = (
    "A gentle breeze carried the smell of fresh bread across the quiet harbor.",
    "Please bring your yellow umbrella when you visit the museum on Thursday.",
    "The children watched the orange kite climb higher than the church tower.",
    "Few people knew that the old judge kept a zebra behind his garage.",
)
COVERAGE_PROMPTS = (
    "The treasure chest was buried beneath a thick layer of beige sand.",
    "Joyful voices echoed through the cathedral during the annual festival.",
    "She measured the width of the doorway with a worn leather tape.",
    "Thirty thoughtful athletes gathered in the north for the winter marathon.",
    "A loud cow wandered out of the barn and pushed against the wooden fence.",
    "His mother usually poured hot cocoa into the big blue mugs.",
    "Vivid purple flowers grew wild along the edge of the frozen pond.",
    "The engineer adjusted the huge valve before the pressure could rise.",
    "Choose a cheap watch or a sturdy clock, but judge each one by its accuracy.",
    "Our neighbor's puppy chewed through the hose and soaked the garden path.",
    "Enjoy the view from the bridge, where the boats glide toward the ocean.",
    "The pilot's voice sounded calm as the plane shook through the storm.",
    "Fishermen usually avoid the shallow bay after the autumn tide turns.",
    "A clever fox sneaked past the sleeping hound and stole a chicken wing.",
    "Measure the yeast with care, or the dough will spill over the bowl.",
    "Good judgment often depends on the ability to listen with patience.",
    "The young singer wore a shiny silver jacket with big golden buttons.",
    "Thick fog hid the lighthouse, so the sailors steered by the sound of a bell.",
    "Each morning the keeper at the zoo feeds the giraffes a pile of crisp green leaves.",
    "Unusual noises from the boiler woke the whole household at dawn.",
)

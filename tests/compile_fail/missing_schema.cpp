// Must NOT compile: the event type has no describe() declaration.
#include <cairn/codec.hpp>

struct undescribed { int x = 0; };

int main() { return static_cast<int>(cairn::encode(undescribed{}).size()); }

// Boost.JSON's implementation (header-only mode): link tickwire_boost_json and include
// <boost/json.hpp> to use it.
#include <boost/json/src.hpp>

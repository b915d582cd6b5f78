#pragma once
// Route handlers (routes_*.cpp) and the helpers they share: typed query parameters
// whose errors name the parameter, keyset cursors, uuid checks.
#include <functional>
#include <optional>
#include <string>

#include "api.h"
#include "ep/json.h"

namespace ep::api {

// Query parameters. A malformed value is kUsage naming the parameter; absent is nullopt.
Result<std::optional<std::string>> q_uuid(const Ctx& c, const char* name);
Result<std::optional<TimeNs>> q_time(const Ctx& c, const char* name);
Result<std::optional<double>> q_number(const Ctx& c, const char* name, double lo, double hi);
Result<int> q_limit(const Ctx& c);
std::optional<std::string> q_str(const Ctx& c, const char* name);
// Rejects parameters the route does not know (a typo would otherwise silently widen
// a query).
Status q_only(const Ctx& c, std::initializer_list<const char*> known);

// Opaque cursors: base64 of fields joined by '\n'. decode returns the fields or kUsage.
std::string encode_cursor(std::initializer_list<std::string> fields);
Result<std::vector<std::string>> decode_cursor(std::string_view cursor, size_t nfields);

bool is_uuid(std::string_view s);
// A path id that is not a UUID cannot exist: 404, like another tenant's id.
Status path_uuid(const std::string& id, const char* what);

// The one page shape: {"items":[...],"next_cursor":"..."|null}.
std::string page_json(const std::string& items_array, const std::optional<std::string>& next);

// The page of the first `limit` rows (the query fetched limit + 1 to learn whether
// there is more): item(w, i) writes row i, cursor_of(i) the cursor after row i.
Response page_response(const pg::Rows& rows, int limit,
                       const std::function<void(JsonWriter&, int)>& item,
                       const std::function<std::string(int)>& cursor_of);

// Handlers.
Result<Response> get_anomalies(Ctx& c);
Result<Response> list_devices(Ctx& c);
Result<Response> get_device(Ctx& c);
Result<Response> create_device(Ctx& c);
Result<Response> list_metrics(Ctx& c);
Result<Response> get_metric(Ctx& c);
Result<Response> create_metric(Ctx& c);
Result<Response> list_rules(Ctx& c);
Result<Response> get_rule(Ctx& c);
Result<Response> create_rule(Ctx& c);
Result<Response> update_rule(Ctx& c);
Result<Response> delete_rule(Ctx& c);
Result<Response> list_webhooks(Ctx& c);
Result<Response> get_webhook(Ctx& c);
Result<Response> create_webhook(Ctx& c);
Result<Response> update_webhook(Ctx& c);
Result<Response> delete_webhook(Ctx& c);
Result<Response> rotate_webhook(Ctx& c);
Result<Response> list_batches(Ctx& c);
Result<Response> get_series(Ctx& c);
Result<Response> list_alerts(Ctx& c);
Result<Response> list_models(Ctx& c);
Result<Response> get_usage(Ctx& c);
Result<Response> get_me(Ctx& c);

}  // namespace ep::api

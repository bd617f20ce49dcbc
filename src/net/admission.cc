#include "net/admission.h"

namespace tickwire::net {

void Admission::Configure(std::uint64_t max_open, std::uint64_t max_unauthenticated,
                          std::uint64_t max_unauthenticated_per_source) {
  std::lock_guard lock(mu_);
  max_open_ = max_open;
  max_unauthenticated_ = max_unauthenticated;
  max_per_source_ = max_unauthenticated_per_source;
}

std::uint64_t Admission::unauthenticated() const {
  std::lock_guard lock(mu_);
  return waiting_.size();
}

void Admission::Unwait(const TicketPtr& ticket) {
  if (!ticket->waiting) return;
  ticket->waiting = false;
  waiting_.erase(ticket->seq);
  if (ticket->source.empty()) return;
  const auto it = by_source_.find(ticket->source);
  if (it == by_source_.end()) return;
  it->second.erase(ticket->seq);
  if (it->second.empty()) by_source_.erase(it);
}

void Admission::Evict(const TicketPtr& victim, Limit why) {
  Unwait(victim);
  victim->evicted_for = why;
  evicted_[static_cast<std::size_t>(why)].fetch_add(1, std::memory_order_relaxed);
}

TicketPtr Admission::CountSource(const TicketPtr& ticket, std::string_view source) {
  ticket->source = std::string(source);
  if (source.empty()) return nullptr;
  auto& seqs = by_source_[ticket->source];
  TicketPtr victim;
  if (seqs.size() >= max_per_source_) {
    victim = waiting_.at(*seqs.begin());
    Evict(victim, Limit::kMaxUnauthPerSource);
  }
  by_source_[ticket->source].insert(ticket->seq);  // Evict may have dropped the set
  return victim;
}

Admission::Decision Admission::Admit(std::string_view source, unsigned worker) {
  std::lock_guard lock(mu_);
  Decision d;
  if (open_.load(std::memory_order_relaxed) >= max_open_) {
    refused_full_.fetch_add(1, std::memory_order_relaxed);
    d.why = Limit::kMaxConnections;
    return d;
  }
  auto t = std::make_shared<AdmissionTicket>();
  t->seq = next_seq_++;
  t->worker = worker;
  t->waiting = true;
  // Room first from the same source, then overall: a source over its share pays for it itself.
  d.evicted = CountSource(t, source);
  if (d.evicted) {
    d.why = Limit::kMaxUnauthPerSource;
  } else if (waiting_.size() >= max_unauthenticated_ && !waiting_.empty()) {
    d.evicted = waiting_.begin()->second;
    d.why = Limit::kMaxUnauthenticated;
    Evict(d.evicted, d.why);
  }
  waiting_.emplace(t->seq, t);
  open_.fetch_add(1, std::memory_order_relaxed);
  d.ticket = std::move(t);
  return d;
}

TicketPtr Admission::SetSource(const TicketPtr& ticket, std::string_view source) {
  std::lock_guard lock(mu_);
  if (!ticket->waiting || !ticket->source.empty()) return nullptr;
  return CountSource(ticket, source);
}

void Admission::Authenticated(const TicketPtr& ticket) {
  std::lock_guard lock(mu_);
  Unwait(ticket);
}

void Admission::Released(const TicketPtr& ticket) {
  std::lock_guard lock(mu_);
  Unwait(ticket);
  open_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace tickwire::net

// PolicyNode: the policy's bookkeeping embedded in every cache entry, and the
// intrusive lists that link entries through it.
//
// Thread safety: none; used under the owning shard's mutex (see
// tiered_cache_core.hpp for the few fields lookups read).
//
// Not API: part of the implementation of evstore::TieredCache
// (evstore/cache.hpp), installed only because the template needs it. No
// compatibility promise: anything here may change in any release. Include
// evstore/cache.hpp instead.
#ifndef EVSTORE_DETAIL_POLICY_NODE_HPP_
#define EVSTORE_DETAIL_POLICY_NODE_HPP_

#include <cstdint>
#include <limits>

namespace evstore::cache_internal {

inline constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

enum class Queue : uint8_t { kNone, kWindow, kProbation, kProtected };
enum class Tier : uint8_t { kNone, kL1, kL2 };

// Policy bookkeeping embedded in every cache entry (intrusive links, so no
// allocation happens in the policy).
struct PolicyNode {
  // First, next to the key and value of the cache node that precedes it: the
  // fields a lookup reads and those changed only while the shard is held
  // exclusively. The rest (from `tier`) is written by read-buffer drains
  // while lookups run, so it is kept off the lookup's cache line (the cache
  // aligns its nodes; for 8-byte keys and values a node is 128 bytes, one
  // line of each kind).
  int64_t deadline_ns = kNever;    // expiry in the current tier
  uint64_t hash = 0;
  uint64_t charge = 0;             // weight in the current tier
  int64_t write_ns = 0;            // clock at the last write
  Tier tier = Tier::kNone;
  Queue queue = Queue::kNone;
  bool pending = false;            // queued for promotion or removal by a buffer drain
  int16_t bucket = -1;             // timer wheel bucket, -1 = not scheduled
  PolicyNode* qprev = nullptr;  // window / probation / protected queue
  PolicyNode* qnext = nullptr;
  uint32_t l1_pos = 0;             // in L1: position in the shard's L1Clock
  PolicyNode* tprev = nullptr;  // timer wheel bucket
  PolicyNode* tnext = nullptr;
  int64_t ttl_ns = 0;              // per-entry TTL; 0 = none
};

// A doubly linked, null-terminated list over one pair of PolicyNode links.
// front = most recently used, back = least recently used.
template <PolicyNode* PolicyNode::*Prev, PolicyNode* PolicyNode::*Next>
struct NodeList {
  PolicyNode* head = nullptr;
  PolicyNode* tail = nullptr;

  bool empty() const { return head == nullptr; }
  void push_front(PolicyNode* n) {
    n->*Prev = nullptr;
    n->*Next = head;
    if (head) head->*Prev = n; else tail = n;
    head = n;
  }
  void remove(PolicyNode* n) {
    if (n->*Prev) (n->*Prev)->*Next = n->*Next; else head = n->*Next;
    if (n->*Next) (n->*Next)->*Prev = n->*Prev; else tail = n->*Prev;
    n->*Prev = n->*Next = nullptr;
  }
  void move_to_front(PolicyNode* n) {
    if (head == n) return;
    remove(n);
    push_front(n);
  }
};

using QueueList = NodeList<&PolicyNode::qprev, &PolicyNode::qnext>;
using TimerList = NodeList<&PolicyNode::tprev, &PolicyNode::tnext>;

}  // namespace evstore::cache_internal

#endif  // EVSTORE_DETAIL_POLICY_NODE_HPP_
